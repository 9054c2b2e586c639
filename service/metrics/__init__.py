"""The service's metrics in Prometheus' text format.

Counting on the hot paths is a plain increment (`requests.RequestStats`,
`eventstore.stats.AppendStats`); everything else is read when scraped (`families.Reading`).
Each process renders its own (`families.render`), every sample labelled with its worker;
with `serve --workers N` the parent's listener merges the workers' (`workers.py`)."""
