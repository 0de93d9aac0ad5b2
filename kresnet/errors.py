"""The one exception type for user mistakes (bad recipe key, missing dataset, unknown model...).

The CLI prints it as a single line without a traceback; it subclasses ValueError so
library callers can catch it the usual way.
"""


class UserError(ValueError):
    """A mistake in what the user asked for; the message names the thing and what was expected."""
