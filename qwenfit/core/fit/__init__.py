"""Fitting, engine-agnostic: the one estimate assembly (:mod:`.assemble`), the planner
(:mod:`.planner`), the nearest settings that fit (:mod:`.nearest`), traced formulas (:mod:`.formulas`),
speed (:mod:`.speed`) and the plain-text rendering (:mod:`.text`). No engine is named here."""
