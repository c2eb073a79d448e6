-- Which NFT standard an event's tickets are minted in (the program's
-- TokenStandard): 'spl_token' (cheapest, no on-chain metadata) or
-- 'token_2022_metadata' (wallets show name, symbol and URI).
ALTER TABLE event_details ADD COLUMN nft TEXT NOT NULL DEFAULT 'spl_token';
