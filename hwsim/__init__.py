"""hwsim: how fast will this network run on that accelerator, and why."""
