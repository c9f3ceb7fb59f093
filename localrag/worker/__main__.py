import sys

from localrag.worker.server import main

sys.exit(main())
