"""A model's architecture: the validated config (:mod:`.spec`), every tensor it stores
(:mod:`.inventory`, parameter counts sum over it) and how a real checkpoint lines up with it
(:mod:`.checkpoint`)."""
