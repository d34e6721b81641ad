"""`python -m keras_tasks.serving`: the same as `keras-tasks serve`."""

import argparse
import sys

from keras_tasks.serving import options, server

parser = argparse.ArgumentParser(prog="python -m keras_tasks.serving", description=server.__doc__.splitlines()[0])
options.add_arguments(parser)
sys.exit(server.main(parser.parse_args()))
