"""The pure stage logic behind the Beam transforms: segmentation, prompts and requests, trajectory
and step-row builders, start-state slicing, rollout labeling with an injected estimator, and
consistency weights. Never imports apache_beam (tests/test_architecture.py checks it)."""
