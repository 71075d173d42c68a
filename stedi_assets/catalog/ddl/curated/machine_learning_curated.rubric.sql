CREATE EXTERNAL TABLE IF NOT EXISTS `${curated_database}`.`machine_learning_curated` (
  `sensorReadingTime` bigint COMMENT 'Time of the step reading, epoch milliseconds.',
  `serialNumber` string COMMENT 'Serial number of the device.',
  `distanceFromObject` double COMMENT 'Distance the Step Trainer measured.',
  `timestamp` bigint COMMENT 'Time of the accelerometer reading (= sensorReadingTime).',
  `x` double COMMENT 'Acceleration along x.',
  `y` double COMMENT 'Acceleration along y.',
  `z` double COMMENT 'Acceleration along z.'
)
COMMENT 'Step readings paired with accelerometer readings at the same time: the training table.'
STORED AS PARQUET
LOCATION '${lake}/curated/machine_learning_curated/snapshots/${machine_learning_curated_snapshot}/data/'
TBLPROPERTIES ('classification' = 'parquet', 'stedi_policy' = 'rubric');
