-- Attach the StackOverflow2010 data files as they come from the download (idempotent).
-- $(MDF) and $(LDF) are sqlcmd variables set by docker-compose.yml.
IF DB_ID(N'StackOverflow2010') IS NULL
BEGIN
    CREATE DATABASE [StackOverflow2010]
        ON (FILENAME = N'$(MDF)'), (FILENAME = N'$(LDF)')
        FOR ATTACH;
END;
GO
SELECT name, compatibility_level, collation_name FROM sys.databases WHERE name = N'StackOverflow2010';
GO
