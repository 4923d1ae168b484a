"""Has this been tried? Change facts, text normalisation, categories and the novelty guard."""
