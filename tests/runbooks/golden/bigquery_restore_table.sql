CREATE OR REPLACE TABLE `shop-prod`.`shop_db`.`orders__restored` AS SELECT * FROM `shop-prod`.`shop_db`.`orders` FOR SYSTEM_TIME AS OF TIMESTAMP '2026-12-01 10:30:00+00:00';
