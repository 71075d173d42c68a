CREATE EXTERNAL TABLE IF NOT EXISTS `${trusted_database}`.`accelerometer_trusted` (
  `user` string COMMENT 'E-mail of the app user who took the reading.',
  `timestamp` bigint COMMENT 'Reading time, epoch milliseconds (legacy key timeStamp accepted).',
  `x` double COMMENT 'Acceleration along x.',
  `y` double COMMENT 'Acceleration along y.',
  `z` double COMMENT 'Acceleration along z.'
)
COMMENT 'Accelerometer readings of customers who agreed to research use.'
STORED AS PARQUET
LOCATION '${lake}/trusted/accelerometer_trusted/snapshots/${accelerometer_trusted_snapshot}/data/'
TBLPROPERTIES ('classification' = 'parquet', 'stedi_policy' = 'any');
