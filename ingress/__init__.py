"""HTTP ingress: takes incoming service messages as CloudEvents and hands them to Temporal."""
