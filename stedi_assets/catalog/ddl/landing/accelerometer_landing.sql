CREATE EXTERNAL TABLE IF NOT EXISTS `${landing_database}`.`accelerometer_landing` (
  `user` string COMMENT 'E-mail of the app user who took the reading.',
  `timestamp` bigint COMMENT 'Reading time, epoch milliseconds (legacy key timeStamp accepted).',
  `x` double COMMENT 'Acceleration along x.',
  `y` double COMMENT 'Acceleration along y.',
  `z` double COMMENT 'Acceleration along z.',
  `source_file` string COMMENT 'Landing file the line came from, relative to the landing root.',
  `source_line` bigint COMMENT 'Physical line number in that file, counting from 1.'
)
COMMENT 'Accelerometer readings from the mobile app, one typed row per valid landing line.'
STORED AS PARQUET
LOCATION '${lake}/landing/accelerometer_landing/snapshots/${accelerometer_landing_snapshot}/data/'
TBLPROPERTIES ('classification' = 'parquet', 'stedi_policy' = 'any');
