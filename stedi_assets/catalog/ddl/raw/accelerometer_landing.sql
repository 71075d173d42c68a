CREATE EXTERNAL TABLE IF NOT EXISTS `${raw_database}`.`accelerometer_landing` (
  `user` string COMMENT 'E-mail of the app user who took the reading.',
  `timestamp` bigint COMMENT 'Reading time, epoch milliseconds (legacy key timeStamp accepted).',
  `x` double COMMENT 'Acceleration along x.',
  `y` double COMMENT 'Acceleration along y.',
  `z` double COMMENT 'Acceleration along z.'
)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
WITH SERDEPROPERTIES ('ignore.malformed.json' = 'true', 'case.insensitive' = 'true')
STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION '${landing}/accelerometer/'
TBLPROPERTIES ('classification' = 'json');
