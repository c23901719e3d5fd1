"""Forward models: what nature and the instruments do (truth -> observables).

``synth`` never imports ``validation``; it may use ``retrieval``'s SPICE/frame plumbing
(``retrieval.spice``, ``retrieval.geometry``, ``retrieval.errors``, ``retrieval.constants``)
but never its physics, so that a shared mistake cannot cancel out in a round trip.
"""
