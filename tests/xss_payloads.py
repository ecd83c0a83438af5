"""Script-injection payloads for tests/test_xss_matrix.py, each with its own marker.

Payload N, if it ever ran, would call `alert(N)` and set `top.__xss_N`, so a run
is caught by the dialog listener or by looking for `__xss*` globals, and it is
known which payload did it. Every payload's text holds `__xss_N` literally, so
the test can also tell on which pages it was shown (as text).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass


def run(n: int) -> str:
    """The code a payload tries to run: no spaces or quotes, so it fits any attribute."""
    return f"alert({n}),top.__xss_{n}=1"


@dataclass(frozen=True)
class Payload:
    n: int
    kind: str
    text: str

    @property
    def marker(self) -> str:
        return f"__xss_{self.n}"


_TEMPLATES: list[tuple[str, str]] = [
    ("script tag", "<script>{js}</script>"),
    ("img onerror", "<img src=x onerror={js}>"),
    ("svg onload", "<svg onload={js}>"),
    ("body onload", "<body onload={js}>"),
    ("details ontoggle", "<details open ontoggle={js}><summary>x</summary></details>"),
    ("javascript: link", '<a href="javascript:{js}">read more</a>'),
    ("data: link", '<a href="data:text/html,<script>{js}</script>">open</a>'),
    ("iframe srcdoc", '<iframe srcdoc="<script>{js}</script>"></iframe>'),
    ("iframe javascript:", '<iframe src="javascript:{js}"></iframe>'),
    ("style expression", '<div style="width:expression({js});background:url(javascript:{js})">'),
    ("jinja expression", "{{{{ '<script>{js}</script>' | safe }}}}"),
    ("jinja statement", "{{% autoescape false %}}<img src=x onerror={js}>{{% endautoescape %}}"),
    ("double-quote breaker", '"><img src=x onerror={js}>'),
    ("single-quote breaker", "'><img src=x onerror={js}>"),
    ("attribute injection", '" autofocus onfocus="{js}" x="'),
    ("entity-encoded tag", "&lt;script&gt;{js}&lt;/script&gt;"),
    ("url-encoded tag", "%3Cscript%3E{js}%3C/script%3E"),
    ("noscript mXSS", '<noscript><p title="</noscript><img src=x onerror={js}>">'),
    ("textarea breakout", "</textarea><script>{js}</script>"),
    ("script-in-JSON breakout", '"}}</script><script>{js}</script>'),
    ("title breakout", "</title><script>{js}</script>"),
    ("math/style mXSS", "<math><mtext><table><mglyph><style><img src=x onerror={js}>"),
    ("svg script", "<svg><script>{js}</script></svg>"),
    ("input autofocus", "<input autofocus onfocus={js}>"),
    ("video source onerror", "<video><source onerror={js}></video>"),
    ("object javascript:", '<object data="javascript:{js}"></object>'),
    ("embed javascript:", '<embed src="javascript:{js}">'),
    ("marquee onstart", "<marquee onstart={js}>news</marquee>"),
    ("bare javascript: URL", "javascript:{js}"),
    ("mixed-case scheme", "JaVaScRiPt:{js}"),
    ("scheme with tab", "java\tscript:{js}"),
    ("JSON unicode escapes", "\\u003cscript\\u003e{js}\\u003c/script\\u003e"),
    ("nested strip bypass", "<scr<script>ipt>{js}</scr</script>ipt>"),
    ("entity in handler", "<img src=x onerror=&#97;lert({n}),top.__xss_{n}=1>"),
    ("fullwidth brackets", "\uff1cscript\uff1e{js}\uff1c/script\uff1e"),
    ("entity in scheme", '<a href="&#106;avascript:{js}">x</a>'),
    ("base href", '<base href="javascript:{js}//">'),
    ("meta refresh", '<meta http-equiv="refresh" content="0;url=javascript:{js}">'),
    ("template literal", "${{{js}}}"),
    ("angular-style sandbox escape", "{{{{constructor.constructor('{js}')()}}}}"),
    ("base64 eval", "<img src=x alt=__xss_{n} onerror=eval(atob('{b64}'))>"),
    ("svg animate onbegin", "<svg><animate onbegin={js} attributeName=x dur=1s>"),
    ("comment breakout", "--><script>{js}</script><!--"),
    ("CDATA breakout", "<![CDATA[]]><script>{js}</script>"),
]


def payloads() -> list[Payload]:
    out = []
    for n, (kind, template) in enumerate(_TEMPLATES, start=1):
        js = run(n)
        b64 = base64.b64encode(js.encode()).decode()
        text = template.format(js=js, n=n, b64=b64)
        assert f"__xss_{n}" in text, kind
        out.append(Payload(n, kind, text))
    return out


PAYLOADS = payloads()
assert len({p.text for p in PAYLOADS}) == len(PAYLOADS) >= 30
