"""The one exception type for user mistakes (bad recipe key, missing dataset, unknown model...).

The CLI prints it as a single line without a traceback; it subclasses ValueError so
library callers can catch it the usual way.
"""


class UserError(ValueError):
    """A mistake in what the user asked for; the message names the thing and what was expected."""


def reraise_as_user_error(error):
    """Raise the `UserError` that a pipeline failure carries, else `error` itself.

    tf.data wraps the Python exceptions of its map functions (a `UserError` naming a bad file,
    raised inside `tf.numpy_function`) in its own error types; the original one-line message is
    recovered from the text.
    """
    text = str(error)
    marker = "UserError: "
    if not isinstance(error, UserError) and marker in text:
        message = text.split(marker, 1)[1].splitlines()[0].strip()
        raise UserError(message) from None
    raise error
