"""Cost formulas, one module per operator family. Importing this package registers them all."""

from . import (  # noqa: F401
    attention,
    backward,
    convolution,
    data_movement,
    elementwise,
    linear_algebra,
    normalization,
    pooling,
    quantized,
    recurrent,
    reductions,
    selection,
)
