"""Dependencies that hand routes what `create_app` set up (overridable in tests).

They are `async def` because FastAPI runs a plain `def` dependency in the thread
pool: two thread hops per question for what is an attribute lookup.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates

from qa.answering import Answerer
from qa.fetch import Fetcher
from qa.settings import Settings
from qa.web.history import TurnSeal
from qa.web.limits import AnswerSlots


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_answerer(request: Request) -> Answerer:
    """The one Answerer built (and warmed) in the app's lifespan."""
    return request.app.state.answerer


async def get_templates(request: Request) -> Jinja2Templates:
    return request.app.state.templates


async def get_seal(request: Request) -> TurnSeal:
    return request.app.state.seal


async def get_answer_slots(request: Request) -> AnswerSlots:
    return request.app.state.answer_slots


async def get_fetcher(request: Request) -> Fetcher:
    """Fetches pages for `POST /api/articles {"url"}` (tests override it: no network)."""
    settings: Settings = request.app.state.settings
    return Fetcher.from_settings(settings)


SettingsDep = Annotated[Settings, Depends(get_settings)]
AnswererDep = Annotated[Answerer, Depends(get_answerer)]
TemplatesDep = Annotated[Jinja2Templates, Depends(get_templates)]
SealDep = Annotated[TurnSeal, Depends(get_seal)]
SlotsDep = Annotated[AnswerSlots, Depends(get_answer_slots)]
FetcherDep = Annotated[Fetcher, Depends(get_fetcher)]
