"""The spread of a result over a few seeds: mean and a t-distribution confidence interval.

With three seeds a standard deviation says little about where the mean lies; the interval says it
in the result's own units, wide as it honestly is (t with 2 degrees of freedom is 4.30, not 1.96).
"""

import math
import statistics


def t_interval(values, confidence=0.95):
    """(mean, half-width) of the two-sided t confidence interval of the mean of `values`.

    half-width = t_{(1 + confidence) / 2, n - 1} * s / sqrt(n), with n = len(values) and s the
    sample standard deviation (n - 1 in its denominator); the interval is mean +- half-width. It
    assumes the values are independent draws of one normal distribution (here: one row's top-1, or
    one row's paired difference, over seeds). With one value the half-width is None (undefined).

    Args:
        values: the per-seed numbers.
        confidence: the interval's coverage, 0.95 for a 95% interval.
    """
    from scipy.stats import t

    values = list(values)
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, None
    quantile = float(t.ppf((1 + confidence) / 2, len(values) - 1))
    return mean, quantile * statistics.stdev(values) / math.sqrt(len(values))


def format_interval(values, signed=False):
    """"mean [low, high]" of the 95% t interval at two decimals ("mean (1 seed)" for a single value).

    Args:
        values: the per-seed numbers.
        signed: print a + on positive numbers (for differences).
    """
    mean, half = t_interval(values)
    number = "{:+.2f}" if signed else "{:.2f}"
    # -0.0 + 0.0 is 0.0: a zero difference prints as +0.00.
    if half is None:
        return f"{number.format(mean + 0.0)} (1 seed)"
    return f"{number.format(mean + 0.0)} [{number.format(mean - half + 0.0)}, {number.format(mean + half + 0.0)}]"


def format_per_seed(values, signed=False):
    """The per-seed numbers at two decimals, separated by " / "."""
    number = "{:+.2f}" if signed else "{:.2f}"
    return " / ".join(number.format(value + 0.0) for value in values)
