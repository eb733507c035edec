"""The one exception memjax raises for input a user can fix."""


class MemjaxError(ValueError):
  """Bad input or state that the user can fix; the message names the problem and the fix.

  The CLI prints these without a traceback. It subclasses ValueError so code that
  already catches ValueError keeps working.
  """
