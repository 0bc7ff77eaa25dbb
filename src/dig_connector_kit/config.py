"""What every connector's configuration parser shares: the error that lists every problem by its
path, from pydantic's validation errors (``dig config validate`` prints the list)."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def validate_config(model: type[M], document: Any) -> M:
    """``document`` as ``model``; ConfigError lists every problem with its path. A model's own rules
    (a validator raising ValueError with one problem a line) are listed one by one."""
    try:
        return model.model_validate(document)
    except ValidationError as error:
        problems: list[str] = []
        for item in error.errors(include_url=False, include_input=False):
            location = ".".join(str(part) for part in item["loc"])
            message = str(item["msg"]).removeprefix("Value error, ")
            if item["type"] == "value_error" and not location:
                problems.extend(message.splitlines())
            else:
                problems.append(f"{location}: {message}" if location else message)
        raise ConfigError(problems) from None
