CREATE EXTERNAL TABLE IF NOT EXISTS `${raw_database}`.`step_trainer_landing` (
  `sensorReadingTime` bigint COMMENT 'Reading time, epoch milliseconds.',
  `serialNumber` string COMMENT 'Serial number of the device.',
  `distanceFromObject` double COMMENT 'Distance the sensor measured.'
)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
WITH SERDEPROPERTIES ('ignore.malformed.json' = 'true', 'case.insensitive' = 'true')
STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION '${landing}/step_trainer/'
TBLPROPERTIES ('classification' = 'json');
