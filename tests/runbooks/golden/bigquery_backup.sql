CREATE SCHEMA IF NOT EXISTS `shop-prod`.`backup_20261201_103000`;
CREATE TABLE `shop-prod`.`backup_20261201_103000`.`shop_db__customers` CLONE `shop-prod`.`shop_db`.`customers`;
CREATE TABLE `shop-prod`.`backup_20261201_103000`.`shop_db__order_items` CLONE `shop-prod`.`shop_db`.`order_items`;
CREATE TABLE `shop-prod`.`backup_20261201_103000`.`shop_db__orders` CLONE `shop-prod`.`shop_db`.`orders`;
CREATE TABLE `shop-prod`.`backup_20261201_103000`.`shop_files__products` CLONE `shop-prod`.`shop_files`.`products`;
CREATE TABLE `shop-prod`.`backup_20261201_103000`.`shop_files__stores` CLONE `shop-prod`.`shop_files`.`stores`;
CREATE TABLE `shop-prod`.`backup_20261201_103000`.`shop_files__supplies` CLONE `shop-prod`.`shop_files`.`supplies`;
