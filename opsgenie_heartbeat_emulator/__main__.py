from opsgenie_heartbeat_emulator.cli import main

raise SystemExit(main())
