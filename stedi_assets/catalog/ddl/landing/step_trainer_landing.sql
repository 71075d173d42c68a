CREATE EXTERNAL TABLE IF NOT EXISTS `${landing_database}`.`step_trainer_landing` (
  `sensorReadingTime` bigint COMMENT 'Reading time, epoch milliseconds.',
  `serialNumber` string COMMENT 'Serial number of the device.',
  `distanceFromObject` double COMMENT 'Distance the sensor measured.',
  `source_file` string COMMENT 'Landing file the line came from, relative to the landing root.',
  `source_line` bigint COMMENT 'Physical line number in that file, counting from 1.'
)
COMMENT 'Distance readings from Step Trainer devices, one typed row per valid landing line.'
STORED AS PARQUET
LOCATION '${lake}/landing/step_trainer_landing/snapshots/${step_trainer_landing_snapshot}/data/'
TBLPROPERTIES ('classification' = 'parquet', 'stedi_policy' = 'any');
