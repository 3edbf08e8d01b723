"""`python -m seamflow_crm`: see `seamflow_crm.cli`."""

from __future__ import annotations

import sys

from seamflow_crm.cli import main

sys.exit(main())
