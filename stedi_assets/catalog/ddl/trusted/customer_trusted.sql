CREATE EXTERNAL TABLE IF NOT EXISTS `${trusted_database}`.`customer_trusted` (
  `customerName` string COMMENT 'Full name of the customer.',
  `email` string COMMENT 'E-mail address; lower(trim(email)) is the identity key of the customer.',
  `phone` string COMMENT 'Phone number.',
  `birthDay` string COMMENT 'Birthday, YYYY-MM-DD.',
  `serialNumber` string COMMENT 'Serial number of the Step Trainer of the customer.',
  `registrationDate` bigint COMMENT 'Registration time, epoch milliseconds.',
  `lastUpdateDate` bigint COMMENT 'Time of this record, epoch milliseconds; the latest record wins.',
  `shareWithResearchAsOfDate` bigint COMMENT 'Research consent since (epoch ms); null means no consent to research use.',
  `shareWithPublicAsOfDate` bigint COMMENT 'Consent to public sharing since (epoch ms), or null.',
  `shareWithFriendsAsOfDate` bigint COMMENT 'Consent to sharing with friends since (epoch ms), or null.'
)
COMMENT 'Customers who agreed to share their data for research.'
STORED AS PARQUET
LOCATION '${lake}/trusted/customer_trusted/snapshots/${customer_trusted_snapshot}/data/'
TBLPROPERTIES ('classification' = 'parquet', 'stedi_policy' = 'any');
