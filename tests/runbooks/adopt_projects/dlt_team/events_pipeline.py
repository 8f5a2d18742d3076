"""The team's events pipeline, as they run it today: `python events_pipeline.py`."""

import json
from pathlib import Path

import dlt

HERE = Path(__file__).parent


@dlt.source(max_table_nesting=0, root_key=True)
def events(api_token=dlt.secrets.value, regions=dlt.config.value):
    @dlt.resource(write_disposition="append")
    def event_log(id=dlt.sources.incremental("id")):
        # Stands in for an API that answers "from the last id on" (feed.json).
        for row in json.loads((HERE / "feed.json").read_text()):
            if row["region"] in regions:
                yield {**row, "token_length": len(api_token)}

    @dlt.resource(selected=False)
    def debug_dump():
        yield {"x": 1}

    return event_log, debug_dump


if __name__ == "__main__":
    pipeline = dlt.pipeline(
        pipeline_name="team_events", destination="duckdb", dataset_name="raw_events"
    )
    print(pipeline.run(events()))
