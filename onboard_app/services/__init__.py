"""Pure-Python core of Onboard: no module in this package imports Reflex."""
