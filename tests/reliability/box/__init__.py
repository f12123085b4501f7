"""The run-in-a-box harness: API emulator, Job controller, kubelets, S3 with faults, the real operator."""
