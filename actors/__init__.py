"""Ready actors: sources, sinks, transforms, flow control and collectives."""

__all__: list[str] = []
