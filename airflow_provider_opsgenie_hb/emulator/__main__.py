from airflow_provider_opsgenie_hb.emulator.cli import main

raise SystemExit(main())
