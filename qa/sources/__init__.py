"""Sources: feeds, sitemaps, pages and folders that `qa` reads again and again.

In: a location (an RSS/Atom feed, a sitemap or sitemap index, one web page, or a
local folder) registered in the index directory. Out: its articles in the index,
one new version per refresh, and a `RefreshReport`.

- `durations`: "30m", "2h", "1d" ↔ seconds.
- `registry`: the sources and what was last fetched from each (INDEX/sources.sqlite).
- `listing`: a feed or sitemap → the article URLs it lists, with their metadata.
- `crawler`: polite fetching (robots.txt, 2 at a time per host, a delay, conditional
  requests) through the SSRF-safe `qa.fetch.Fetcher`.
- `refresh`: one source → articles → the indexer, all or nothing.
- `scheduler`: the background thread of `qa serve` that refreshes due sources.
"""
