CREATE EXTERNAL TABLE IF NOT EXISTS `${trusted_database}`.`step_trainer_trusted` (
  `sensorReadingTime` bigint COMMENT 'Reading time, epoch milliseconds.',
  `serialNumber` string COMMENT 'Serial number of the device.',
  `distanceFromObject` double COMMENT 'Distance the sensor measured.',
  `customer_key` string COMMENT 'Identity key lower(trim(email)) of the customer the reading is attributed to.'
)
COMMENT 'Step Trainer readings of curated customers devices.'
STORED AS PARQUET
LOCATION '${lake}/trusted/step_trainer_trusted/snapshots/${step_trainer_trusted_snapshot}/data/'
TBLPROPERTIES ('classification' = 'parquet', 'stedi_policy' = 'strict');
