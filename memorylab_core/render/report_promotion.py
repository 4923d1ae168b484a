"""The morning report's promotion section: the confirmed champion (or, before the policy confirmed any
run, the baseline) and the unconfirmed tip, kept apart.

Gains are shown as estimate ± standard error with a 90% interval, from :mod:`.estimates` (replicates
preferred over the run that won the keep, and the selection's expected luck taken out), so the report
does not repeat the winner's curse of "best single run so far".
"""

from __future__ import annotations

from collections.abc import Callable

from ..ledger.model import plural
from ..policy.estimates import anchor_label, gain_phrase
from ..policy.verdict import noise_words

Cell = Callable[[object], str]  # makes user text safe for markdown (report.md_cell)


def _gain(gain: dict | None, against: str) -> str:
    if not gain:
        return ""
    phrase = gain_phrase(gain, against, strong=lambda text: f"**{text}**")
    return f" {phrase[0].upper()}{phrase[1:]}."


def _who(item: dict, cell: Cell) -> str:
    return (f"`{cell(item['run_id'])}` (commit `{cell((item['commit'] or 'n/a')[:7])}`), estimated val_bpb "
            f"{item['estimate_val_bpb']:.6f} from {item['estimate_runs']} of {plural(item['runs'], 'run')}: "
            f"{cell(item['description'])}.")


def promotion_section(data: dict, cell: Cell) -> list[str]:
    """Markdown lines for ``data["promotion"]`` (``estimates.standings``); nothing when it is absent."""
    promo = data.get("promotion")
    if not promo or promo.get("confirmed") is None:
        return []
    confirmed, tip = promo["confirmed"], promo.get("tip")
    anchor = anchor_label(promo)
    title = anchor[0].upper() + anchor[1:]
    lines = [f"## {title} and tip", ""]
    gain = _gain(confirmed.get("vs_baseline"), "the baseline")
    lines.append(f"- **{title}:** {_who(confirmed, cell)}{gain}")
    if promo.get("tip_is_confirmed") or tip is None:
        lines.append(f"- **Tip:** the {anchor}; nothing on top of it.")
    else:
        gain = _gain(tip.get("vs_confirmed"), f"the {anchor}")
        lines.append(f"- **Unconfirmed tip:** {_who(tip, cell)}{gain} Replicate it before trusting the gain "
                     "(`memorylab replicate`).")
    noise = promo["noise"]
    lines.append(f"- **Noise level:** {noise_words(noise)} per run; see docs/promotion.md.")
    return lines + [""]
