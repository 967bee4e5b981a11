"""The dynamic scheduler: the policy, its online RAM regressor, the packers, size features,
critical-path ranks and the ready jobs as arrays."""
