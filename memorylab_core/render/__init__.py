"""Views for people and machines: markdown report, HTML dashboard and SVG, exports, Prometheus."""
