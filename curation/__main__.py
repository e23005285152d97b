import sys

from curation.cli.main import main

sys.exit(main())
