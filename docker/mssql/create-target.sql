-- The empty SQL Server target database (idempotent); ray-replicator creates the tables.
IF DB_ID(N'StackOverflow2010Copy') IS NULL
    CREATE DATABASE [StackOverflow2010Copy];
GO
