"""Customer and do-not-call lists for admins: CSV files (`csvfile`, pure L0) and records
validated with the PBX's rules (`records`, pure L2). The storage (`pbx.storage.customers`)
applies them; the admin API (`pbx.cti.admin`) and the CLI (`pbx.cli_customers`) use them."""
