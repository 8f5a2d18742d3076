BEGIN TRANSACTION;
DELETE FROM `shop-prod`.`shop_db`.`orders` WHERE TRUE;
INSERT INTO `shop-prod`.`shop_db`.`orders` SELECT * FROM `shop-prod`.`shop_db`.`orders__restored`;
COMMIT TRANSACTION;
DROP TABLE `shop-prod`.`shop_db`.`orders__restored`;
