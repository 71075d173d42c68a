CREATE EXTERNAL TABLE IF NOT EXISTS `${curated_database}`.`machine_learning_curated` (
  `customer_id` string COMMENT 'Keyed pseudonym of the customer: hex HMAC-SHA256 of the identity key.',
  `sensorReadingTime` bigint COMMENT 'Time of the step reading, epoch milliseconds.',
  `distanceFromObject` double COMMENT 'Distance the Step Trainer measured.',
  `x` double COMMENT 'Acceleration along x.',
  `y` double COMMENT 'Acceleration along y.',
  `z` double COMMENT 'Acceleration along z.'
)
COMMENT 'Step readings paired with accelerometer readings at the same time: the training table.'
STORED AS PARQUET
LOCATION '${lake}/curated/machine_learning_curated/snapshots/${machine_learning_curated_snapshot}/data/'
TBLPROPERTIES ('classification' = 'parquet', 'stedi_policy' = 'strict');
