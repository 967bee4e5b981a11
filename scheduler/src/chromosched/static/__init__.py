"""The static scheduler: the task model and its inputs, exact peak evaluators, order searches,
proven lower bounds and the ordering tables."""
