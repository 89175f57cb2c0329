package main

// etlQueries are the everyday-ETL query set (issue 14): ten queries over
// the generated events that use the function library (CASE, COALESCE,
// NULLIF, string, math and time functions, aggregates over expressions,
// FILTER, expression keys), each written as riffle steps and as the DuckDB
// SQL that computes the same rows (TestETLQueriesMatchDuckDB checks that
// they do). `go run ./bench/pipeline --set etl` times both side by side.
var etlQueries = []query{
	{
		name: "daily by type",
		steps: `
  - aggregate:
      group_by: ["date_trunc('day', event_time) AS day", event_type]
      aggs: ["count(*) AS n", "sum(weight) AS total"]`,
		sql: `SELECT date_trunc('day', event_time) AS day, event_type, count(*) AS n, sum(weight) AS total
FROM read_parquet('%s') GROUP BY ALL`,
	},
	{
		name: "CASE buckets",
		steps: `
  - aggregate:
      group_by: ["CASE WHEN weight < 1 THEN 'low' WHEN weight < 3 THEN 'mid' ELSE 'high' END AS bucket"]
      aggs: ["count(*) AS n", "avg(weight) AS mean"]`,
		sql: `SELECT CASE WHEN weight < 1 THEN 'low' WHEN weight < 3 THEN 'mid' ELSE 'high' END AS bucket, count(*) AS n, avg(weight) AS mean
FROM read_parquet('%s') GROUP BY ALL`,
	},
	{
		name: "string normalize",
		steps: `
  - filter: "lower(event_type) LIKE '%a%'"
  - aggregate:
      group_by: ["upper(event_type) AS kind", "length(event_type) AS len"]
      aggs: ["count(*) AS n"]`,
		sql: `SELECT upper(event_type) AS kind, length(event_type) AS len, count(*) AS n
FROM read_parquet('%s') WHERE lower(event_type) LIKE '%%a%%' GROUP BY ALL`,
	},
	{
		name: "coalesce/nullif",
		steps: `
  - aggregate:
      group_by: ["item_id % 100 AS shard"]
      aggs: ["sum(coalesce(nullif(round(weight), 0), 1)) AS w", "count(*) FILTER (WHERE round(weight) = 0) AS zeros"]`,
		sql: `SELECT item_id %% 100 AS shard, sum(coalesce(nullif(round(weight), 0), 1)) AS w, count(*) FILTER (WHERE round(weight) = 0) AS zeros
FROM read_parquet('%s') GROUP BY ALL`,
	},
	{
		name: "hour of day",
		steps: `
  - aggregate:
      group_by: ["extract(hour FROM event_time) AS hour"]
      aggs: ["count(*) AS n", "count(*) FILTER (WHERE event_type = 'purchase') AS purchases"]`,
		sql: `SELECT extract(hour FROM event_time) AS hour, count(*) AS n, count(*) FILTER (WHERE event_type = 'purchase') AS purchases
FROM read_parquet('%s') GROUP BY ALL`,
	},
	{
		name: "concat key",
		steps: `
  - aggregate:
      group_by: ["concat(event_type, '-', CAST(item_id % 10 AS string)) AS k"]
      aggs: ["count(*) AS n", "max(weight) AS top"]`,
		sql: `SELECT concat(event_type, '-', CAST(item_id %% 10 AS VARCHAR)) AS k, count(*) AS n, max(weight) AS top
FROM read_parquet('%s') GROUP BY ALL`,
	},
	{
		name: "math per user shard",
		steps: `
  - aggregate:
      group_by: ["user_id % 1000 AS shard"]
      aggs: ["avg(sqrt(weight)) AS rms", "stddev(ln(weight + 1)) AS spread", "sum(pow(weight, 2)) AS sq"]`,
		sql: `SELECT user_id %% 1000 AS shard, avg(sqrt(weight)) AS rms, stddev(ln(weight + 1)) AS spread, sum(pow(weight, 2)) AS sq
FROM read_parquet('%s') GROUP BY ALL`,
	},
	{
		name: "regexp filter",
		steps: `
  - filter: "regexp_matches(event_type, '^(cart|purchase)$')"
  - aggregate:
      group_by: [item_id]
      aggs: ["count(*) AS n", "sum(weight) AS total"]`,
		sql: `SELECT item_id, count(*) AS n, sum(weight) AS total
FROM read_parquet('%s') WHERE regexp_matches(event_type, '^(cart|purchase)$') GROUP BY ALL`,
	},
	{
		name: "substr prefix",
		steps: `
  - aggregate:
      group_by: ["substr(event_type, 1, 3) AS p"]
      aggs: ["count(*) AS n", "sum(weight) AS total", "count_distinct(item_id) AS items"]`,
		sql: `SELECT substr(event_type, 1, 3) AS p, count(*) AS n, sum(weight) AS total, count(DISTINCT item_id) AS items
FROM read_parquet('%s') GROUP BY ALL`,
	},
	{
		name: "hourly clipped",
		steps: `
  - filter: "event_type <> 'view'"
  - aggregate:
      group_by: ["date_trunc('hour', event_time) AS hour"]
      aggs: ["sum(least(greatest(weight, 0.5), 4)) AS clipped", "count(*) AS n"]`,
		sql: `SELECT date_trunc('hour', event_time) AS hour, sum(least(greatest(weight, 0.5), 4)) AS clipped, count(*) AS n
FROM read_parquet('%s') WHERE event_type <> 'view' GROUP BY ALL`,
	},
}
