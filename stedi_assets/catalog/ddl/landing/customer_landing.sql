CREATE EXTERNAL TABLE IF NOT EXISTS `${landing_database}`.`customer_landing` (
  `customerName` string COMMENT 'Full name of the customer.',
  `email` string COMMENT 'E-mail address; lower(trim(email)) is the identity key of the customer.',
  `phone` string COMMENT 'Phone number.',
  `birthDay` string COMMENT 'Birthday, YYYY-MM-DD.',
  `serialNumber` string COMMENT 'Serial number of the Step Trainer of the customer.',
  `registrationDate` bigint COMMENT 'Registration time, epoch milliseconds.',
  `lastUpdateDate` bigint COMMENT 'Time of this record, epoch milliseconds; the latest record wins.',
  `shareWithResearchAsOfDate` bigint COMMENT 'Research consent since (epoch ms); null means no consent to research use.',
  `shareWithPublicAsOfDate` bigint COMMENT 'Consent to public sharing since (epoch ms), or null.',
  `shareWithFriendsAsOfDate` bigint COMMENT 'Consent to sharing with friends since (epoch ms), or null.',
  `source_file` string COMMENT 'Landing file the line came from, relative to the landing root.',
  `source_line` bigint COMMENT 'Physical line number in that file, counting from 1.'
)
COMMENT 'Customer records from the STEDI web site, one typed row per valid landing line.'
STORED AS PARQUET
LOCATION '${lake}/landing/customer_landing/snapshots/${customer_landing_snapshot}/data/'
TBLPROPERTIES ('classification' = 'parquet', 'stedi_policy' = 'any');
