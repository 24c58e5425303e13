"""isx's own errors: those a user fixes (a bad value, a missing file, a diverged run), each with
a message that says what to do. The binaries print them in one line (ISX_TRACEBACK=1 adds the
traceback); any other exception, from a library or from a plug-in's own code, keeps its
traceback. Each also derives from the built-in error it stands for, so `except ValueError`
still catches a ConfigError."""


class UserError(Exception):
  """An error the user fixes; its message says how."""


class ConfigError(UserError, ValueError):
  """A config value, flag or plug-in setting that cannot work."""


class NotFound(UserError, FileNotFoundError):
  """A file, folder, dataset or checkpoint that is not there."""


class NotWritable(UserError, PermissionError):
  """A place isx must write to and cannot."""


class InTheWay(UserError, FileExistsError):
  """A file where isx needs a folder of its own."""


class NotAFolder(UserError, NotADirectoryError):
  """A file where isx needs a folder."""


class Preempted(Exception):
  """A checkpoint was saved on SIGTERM/SIGINT; the binaries exit with its message, and the same
  command resumes."""
