"""The planted teacher's parameters: a TOML file of lambda, a learning rate and (q, w) per context.

`planted:default` reads the file shipped beside this module; `planted:FILE.toml` reads a user's
own. Any problem is one line naming the file and the field.
"""

from __future__ import annotations

from hashlib import sha256
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from ...errors import ConfigError, describe_validation_error
from ...tomlfiles import load_toml_bytes

#: The parameter file of `planted:default`.
DEFAULT_FILE = Path(__file__).with_name("default.toml")
#: A parameter file is a few dozen lines; a larger one is a wrong file, refused before it is parsed.
MAX_FILE_BYTES = 1_000_000

ContextId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class Disposition(BaseModel):
    """How the planted player sees a coplayer in one context."""

    # strict: `lambda = true` or `belief = "0.5"` is a mistake in the file, not a number to coerce.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)
    belief: float = Field(ge=0, le=1, description="q: probability the coplayer cooperates (gives the endowment).")
    weight: float = Field(ge=-1, le=1, description="w: weight on each coplayer's payoff (0 selfish, < 0 spiteful).")


class PlantedParams(BaseModel):
    """A whole parameter file."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, populate_by_name=True, strict=True)
    rationality: float = Field(alias="lambda", gt=0, le=100,
                               description="lambda: logit scale on the stated payoffs at temperature 1.")
    learning_rate: float = Field(ge=0, le=1, description="Share of the way q moves toward each observed choice.")
    default: Disposition = Field(description="For contexts without an entry.")
    context: dict[ContextId, Disposition] = Field(default_factory=dict)

    def disposition(self, context_id: str) -> Disposition:
        """The context's own (q, w), or the default for a context the file does not list."""
        return self.context.get(context_id, self.default)


class PlantedSource(BaseModel):
    """Parameters with the file they came from and its hash (recorded with every run)."""

    model_config = ConfigDict(frozen=True)
    file: str
    sha256: str
    params: PlantedParams

    @property
    def name(self) -> str:
        return "default" if Path(self.file) == DEFAULT_FILE else self.file


def load_params(ident: str) -> PlantedSource:
    """The parameters `planted:<ident>` names: 'default' or a TOML file."""
    path = DEFAULT_FILE if ident == "default" else Path(ident)
    if ident != "default" and path.suffix != ".toml":
        raise ConfigError(path, "planted: takes 'default' or a parameter file ending in .toml "
                                "(e.g. planted:my-params.toml; see docs/planted.md)")
    raw, data = load_toml_bytes(path, ConfigError, example="a parameter file (.toml)", max_bytes=MAX_FILE_BYTES)
    try:
        params = PlantedParams.model_validate(data)
    except ValidationError as exc:
        loc, msg = describe_validation_error(exc)
        raise ConfigError(path, msg, field=loc) from None
    return PlantedSource(file=str(path), sha256=sha256(raw).hexdigest(), params=params)
