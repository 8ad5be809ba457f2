"""Faults: the registry of fault kinds (:mod:`~sim.model.faults.kinds`: each kind's parameters, targets,
inverse, clash rule and effect) and the schedules, nemeses and injector that dispatch through it
(:mod:`~sim.model.faults.injector`)."""
