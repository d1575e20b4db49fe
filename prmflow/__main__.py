import sys

from prmflow.cli import main

if __name__ == "__main__":  # engines that spawn worker processes re-import the main module
    sys.exit(main())
