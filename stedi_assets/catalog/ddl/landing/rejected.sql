CREATE EXTERNAL TABLE IF NOT EXISTS `${landing_database}`.`rejected` (
  `source` string COMMENT 'Landing source: customer, accelerometer or step_trainer.',
  `source_file` string COMMENT 'Landing file the line came from, relative to the landing root.',
  `source_line` bigint COMMENT 'Physical line number in that file, counting from 1.',
  `raw` string COMMENT 'The line as read (invalid UTF-8 shown with backslash escapes).',
  `reason` string COMMENT 'Why the line was rejected.'
)
COMMENT 'The quarantine: every landing line that failed validation, with file, line, raw text and reason.'
STORED AS PARQUET
LOCATION '${lake}/landing/rejected/snapshots/${rejected_snapshot}/data/'
TBLPROPERTIES ('classification' = 'parquet', 'stedi_policy' = 'any');
