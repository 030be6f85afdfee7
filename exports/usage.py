"""Usage errors of the export front ends: one line `<prog>: error: ...` on stderr, exit 2."""
import sys

from absl import flags


def usage_error(program, message):
    sys.stderr.write(f"{program}: error: {' '.join(str(message).split())}\n")
    sys.exit(2)


def one_line_parser(program):
    """An `app.run(flags_parser=...)` that reports flag-parsing errors on one line, exit 2."""
    def parse(argv):
        try:
            return flags.FLAGS(argv)
        except flags.Error as err:
            usage_error(program, err)
    return parse
