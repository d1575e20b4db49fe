import sys

from prmflow.cli import main

sys.exit(main())
